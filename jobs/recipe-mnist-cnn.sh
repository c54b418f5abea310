#!/usr/bin/env bash
# MNIST with a CNN (issue 12): ref-cnn's layers (the Keras mnist_cnn
# example) with affine + elastic augmentation and a cosine schedule.
# Not yet measured: the epoch count is sized from the step time of ref-cnn
# on 2 cores (about 40 s an epoch) to stay within 45 minutes.
# Usage: jobs/recipe-mnist-cnn.sh   (RANKS=2 for mpirun -np 2)
source "$(dirname "$0")/recipe-common.sh"
recipe mnist-cnn --model ref-cnn --augment default --lr-schedule cosine --warmup-epochs 1 \
  --epochs 60 --checkpoint-every 10
