"""The layers, one family per file (as torch.nn.modules)."""

from tinytorch.nn.modules.activation import *
from tinytorch.nn.modules.attention import *
from tinytorch.nn.modules.container import *
from tinytorch.nn.modules.conv import *
from tinytorch.nn.modules.dropout import *
from tinytorch.nn.modules.linear import *
from tinytorch.nn.modules.loss import *
from tinytorch.nn.modules.module import *
from tinytorch.nn.modules.normalization import *
from tinytorch.nn.modules.pooling import *
from tinytorch.nn.modules.rnn import *
from tinytorch.nn.modules.sparse import *
from tinytorch.nn.modules.transformer import *
