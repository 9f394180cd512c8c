import sys

from lm_recipe.cli import main

sys.exit(main())
