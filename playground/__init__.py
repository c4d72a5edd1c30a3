"""The playground: model and evaluation services behind a Gradio UI.

Services (models, prompts, generation, training, evaluation, leaderboard, data) never
import gradio; `playground.ui` is the only place that does.
"""

import logging

__version__ = "0.1.0"

# bitsandbytes' CPU backend warns on import (peft imports it) that an optional Hub kernel package
# is missing, on CPUs with avx512_bf16. The playground never runs bitsandbytes on a CPU
# (models/loader.py), so on a CPU machine that warning would only mislead.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
