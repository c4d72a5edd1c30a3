"""The playground: model and evaluation services behind a Gradio UI.

Services (models, prompts, generation, training, evaluation, leaderboard, data) never
import gradio; `playground.ui` is the only place that does.
"""

__version__ = "0.1.0"
