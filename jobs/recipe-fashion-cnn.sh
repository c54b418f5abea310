#!/usr/bin/env bash
# Fashion-MNIST (tools/fetch-mnist --fashion) with a CNN (issue 12): two
# padded 3x3 conv blocks, pooling, dropout, a 256-unit dense layer; cosine
# schedule. Not yet measured (see README, Accuracy).
# Usage: jobs/recipe-fashion-cnn.sh   (RANKS=2 for mpirun -np 2)
source "$(dirname "$0")/recipe-common.sh"
recipe fashion-cnn --train data/fashion_train.h5 --test data/fashion_test.h5 \
  --model conv:32x3x3/p1,relu,conv:32x3x3/p1,relu,maxpool:2,dropout:0.25,conv:64x3x3/p1,relu,maxpool:2,dropout:0.25,flatten,dense:256,relu,dropout:0.5 \
  --lr-schedule cosine --warmup-epochs 1 --epochs 40 --checkpoint-every 10
