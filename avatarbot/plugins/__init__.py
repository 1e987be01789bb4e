"""Plugin system: manifests, dependency resolution, typed config, hot-reloading manager, registry.

Plugins run in-process with the server's full rights; installing one is a superuser action.
Import the submodules directly (`avatarbot.plugins.manager`, ...): this package stays light.
"""
