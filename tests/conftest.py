import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch

# torch is the reference oracle here, not the thing being timed: on a 2-core
# machine its thread pool only contends with the test process.
torch.set_num_threads(1)
