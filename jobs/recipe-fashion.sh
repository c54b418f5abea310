#!/usr/bin/env bash
# Fashion-MNIST (Debian's dataset-fashion-mnist, tools/fetch-mnist --fashion)
# with the no-augmentation recipe. Usage: jobs/recipe-fashion.sh
source "$(dirname "$0")/recipe-common.sh"
recipe fashion --train data/fashion_train.h5 --test data/fashion_test.h5 --layers 1024,1024 \
  --dropout 0.3 --lr-schedule cosine --warmup-epochs 1 --epochs 40
