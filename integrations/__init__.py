"""Framework adapters, installed as ``gfm_accel.integrations``.

* ``gfm_accel.integrations.hf``: ``GFMJump`` as a Hugging Face ``TrainerCallback``.
* ``gfm_accel.integrations.lightning``: ``GFMJump`` as a Lightning ``Callback``.

Plain torch loops need no adapter: ``from gfm_accel import GFMJump``. Each adapter
imports its framework only when imported itself, with a clear error naming the extra
to install when the framework is missing.
"""

__all__ = ["hf", "lightning"]
