"""Text/audio -> speech -> talking portrait MP4. Heavy libraries are imported lazily inside stages."""
