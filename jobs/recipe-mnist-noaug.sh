#!/usr/bin/env bash
# MNIST without augmentation: 784-1024-1024-10, dropout 0.3, Adam with a
# cosine schedule over 40 epochs. Measured: 98.77% test accuracy in 2 min 13 s
# (1 rank x 2 threads, this 2-core machine). Usage: jobs/recipe-mnist-noaug.sh
source "$(dirname "$0")/recipe-common.sh"
recipe mnist-noaug --layers 1024,1024 --dropout 0.3 --lr-schedule cosine --warmup-epochs 1 \
  --epochs 40
