#!/usr/bin/env bash
# MNIST with on-the-fly affine + elastic augmentation (Simard et al. 2003
# style): 784-1024-1024-10, dropout 0.1, cosine schedule over 100 epochs.
# Usage: jobs/recipe-mnist-augment.sh
source "$(dirname "$0")/recipe-common.sh"
recipe mnist-augment --layers 1024,1024 --dropout 0.1 --augment default --lr-schedule cosine \
  --warmup-epochs 1 --epochs 100 --checkpoint-every 10
