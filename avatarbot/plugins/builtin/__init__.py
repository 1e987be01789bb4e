"""Plugins shipped with avatarbot; each subfolder is one plugin with a plugin.yaml manifest."""
