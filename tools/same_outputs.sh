#!/usr/bin/env bash
# Fit every model with fixed seeds and save every output, for tools/compare_outputs.py.
# Usage: tools/same_outputs.sh CHECKOUT OUTDIR (CHECKOUT: a git worktree of the commit to run;
# it runs with this repository's .venv and PYTHONPATH=CHECKOUT, so link CHECKOUT/journeymodel/cli
# to CHECKOUT/cli first: ln -s ../cli CHECKOUT/journeymodel/cli).
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
REPO=$(cd "$1" && pwd); OUT=$2; mkdir -p "$OUT"; cd "$OUT"
JM="env PYTHONPATH=$REPO $HERE/.venv/bin/journeymodel"
B="--draws 300 --tune 300 --chains 2 --seed 3"
$JM sample-data -o ev.parquet --customers 800 --seed 5 > sample.txt 2>&1
$JM describe ev.parquet --json > describe.json 2>&1
for k in 1 2 3; do $JM fit markov ev.parquet -o markov$k.nc --order $k --seed 1 --json > fit_markov$k.json 2>&1; done
$JM fit markov ev.parquet -o markovp.nc --order 2 --prior 0.5 --keep-repeats --holdout 0.2 --seed 1 --json > fit_markovp.json 2>&1
$JM fit stages ev.parquet -o stages.nc --stages 3 --restarts 2 --seed 1 --json > fit_stages.json 2>&1
$JM fit stages ev.parquet -o stagesf.nc --stages 3 --topology funnel --restarts 1 --seed 2 --json > fit_stagesf.json 2>&1
$JM fit conversion ev.parquet -o conv.nc $B --json > fit_conv.json 2>&1
$JM fit conversion ev.parquet -o convby.nc --by first_touchpoint $B --json > fit_convby.json 2>&1
$JM fit churn ev.parquet -o sbg.nc --model sbg $B --json > fit_sbg.json 2>&1
$JM fit churn ev.parquet -o wei.nc --model weibull $B --json > fit_wei.json 2>&1
$JM fit churn ev.parquet -o bg.nc --model bgnbd --keep-customers $B --json > fit_bg.json 2>&1
for m in markov1 markov3 markovp stages conv convby sbg wei bg; do $JM inspect $m.nc --json > inspect_$m.json 2>&1; done
for m in markov1 markov2 markov3; do $JM attribute $m.nc --json --seed 2 > attr_$m.json 2>&1; done
$JM attribute markov1.nc --method shapley --json > attr_shap.json 2>&1
$JM pain-points markov1.nc stages.nc --json --seed 2 > pain.json 2>&1
$JM pain-points markov2.nc --json --seed 2 > pain2.json 2>&1
$JM predict markov2.nc ev.parquet -o pred_markov.csv > pred_markov.txt 2>&1
$JM predict stages.nc ev.parquet -o pred_stages.csv > pred_stages.txt 2>&1
$JM simulate markov2.nc -n 500 -o sim_markov.csv --seed 4 > sim_markov.txt 2>&1
$JM simulate stages.nc -n 500 -o sim_stages.csv --seed 4 > sim_stages.txt 2>&1
for m in sbg wei bg; do $JM forecast $m.nc --horizon 6 --json --seed 4 > fc_$m.json 2>&1; done
$JM report markov1.nc stages.nc conv.nc sbg.nc --events ev.parquet -o report.html --json > report.json 2>&1
$JM forecast conv.nc --journeys 500 --json --seed 4 > fc_conv.json 2>&1
echo "outputs in $OUT"
