"""train(cfg), sample(cfg), evaluate(cfg): the only code that instantiates from a config."""
