"""Training a cascade stage: config, input pipeline, model zoo, the tf.distribute loop, resumable callbacks."""
