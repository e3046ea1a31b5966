"""Environment pauser Lambda: stops every service of an environment and starts them again."""
