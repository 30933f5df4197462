import sys

from spinemets.cli import main

sys.exit(main())
