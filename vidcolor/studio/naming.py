"""Where a studio keeps a person's choices (light: the batch scanner reads these names too)."""

CHOICES_SUFFIX = ".studio"  # film.mp4 -> film.studio/ beside it (one film or one photo)
PHOTOS_CHOICES = "vidcolor-studio"  # several photos -> vidcolor-studio/ in the first one's folder


def is_choices_folder(name: str) -> bool:
    """A studio's choices folder: anchor pictures for `run`/`batch`, never pictures to colour."""
    return name.endswith(CHOICES_SUFFIX) or name == PHOTOS_CHOICES
