"""Platform-neutral chat logic: message types, dedup, routing, commands, replies."""
