# vidcolor in a container. CPU image (default):
#   docker build -t vidcolor .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD":/data vidcolor run film.mp4 film_colour.mp4
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD":/data vidcolor image scans/ -o colour/
# (/data is the working folder: paths are relative to the mounted directory; --user makes the
# outputs yours rather than root's.)
#
# CUDA image: the same Dockerfile with PyTorch's CUDA wheel index. The CUDA wheels bring their
# own CUDA runtime, so the slim base stays; the host needs an NVIDIA driver and the NVIDIA
# Container Toolkit. Pick a CUDA tag that pytorch.org lists for torch 2.13.0, e.g.:
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t vidcolor:cuda .
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD":/data vidcolor:cuda run film.mp4 out.mp4 --device cuda
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

# torch first, from the chosen index: the package's own `torch` requirement is then already met
# and pip does not pull the multi-GB default (CUDA) build from PyPI.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"

WORKDIR /opt/vidcolor
COPY pyproject.toml README.md ./
COPY vidcolor ./vidcolor
# PyAV, OpenCV (headless) and Pillow wheels bundle FFmpeg and their codecs: no apt packages needed.
RUN pip install . && vidcolor --help > /dev/null

WORKDIR /data
ENTRYPOINT ["vidcolor"]
CMD ["--help"]
