"""``python -m openai_images``: the command line, as ``openai-images``."""

from openai_images.cli import main

raise SystemExit(main())
