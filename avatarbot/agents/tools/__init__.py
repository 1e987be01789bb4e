"""Tools agents can call: built-ins (video, speech, digital humans, schedules) and plugin tools."""
