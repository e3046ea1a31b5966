"""The ``openmwaa`` console script: commands that run on an operator's machine, with the
caller's own AWS credentials, never inside the environment."""
