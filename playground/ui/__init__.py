"""The Gradio UI: one module per tab; each wires events to plain service functions."""
