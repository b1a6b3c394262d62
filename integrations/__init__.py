"""Framework adapters, installed as ``gfm_accel.integrations``.

* ``gfm_accel.integrations.hf``: ``GFMJump`` as a Hugging Face ``TrainerCallback``.
* ``gfm_accel.integrations.lightning``: ``GFMJump`` as a Lightning ``Callback``.

Import the submodule you need (``from gfm_accel.integrations.hf import GFMJump``). Plain
torch loops need no adapter: ``from gfm_accel import GFMJump``. Each adapter imports its
framework only when imported itself, with a clear error naming the extra to install when
the framework is missing; so this package exports no names itself, and
``from gfm_accel.integrations import *`` works with neither extra installed.
"""

__all__: list[str] = []
