"""`python -m p2p_real VERB ...`, the form launchers take: `torchrun --nproc-per-node 4 -m p2p_real invert ...`."""
import sys

from .cli import main

sys.exit(main())
