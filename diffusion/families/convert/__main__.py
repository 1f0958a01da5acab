"""python -m diffusion.families.convert lmnt|diffusers SOURCE --run RUN (see __init__.py)."""
import sys

from diffusion.families.convert import main

sys.exit(main())
