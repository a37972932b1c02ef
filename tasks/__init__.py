"""The pipeline's stages as Prefect tasks, one module per stage, each reading as read -> rules -> write."""
