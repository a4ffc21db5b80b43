import sys

from tasklens.cli import main

sys.exit(main())
