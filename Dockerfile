# The Hugging Face Space image. Its steps are the ones CI runs (scripts/setup.sh), so
# what passes CI is what runs here. Spaces run containers as uid 1000.
FROM python:3.11-slim-bookworm

RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
RUN useradd -m -u 1000 user
USER user
WORKDIR /home/user/app
COPY --chown=user . .

# requirements.txt brings bitsandbytes on Linux, so on GPU hardware a model loads in 4-bit NF4 by
# default (the model bar says "4-bit NF4"); the build fails here rather than the Space quietly
# falling back to bf16. The build machine has no GPU: this checks the install, not a GPU load
# (scripts/check_gpu_install.py does that on a GPU).
RUN bash scripts/setup.sh \
    && .venv/bin/python -c "import bitsandbytes, datasets, tensorboard" \
    && .venv/bin/python -c "from playground.models.embedded import ensure_converted; ensure_converted()"

ENV GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    PLAYGROUND_DATA_DIR=/home/user/app/data \
    PLAYGROUND_ADAPTERS_DIR=/home/user/app/adapters
EXPOSE 7860
CMD [".venv/bin/python", "app.py"]
