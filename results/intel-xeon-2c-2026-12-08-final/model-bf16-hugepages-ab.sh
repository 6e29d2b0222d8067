#!/usr/bin/env bash
# Interleaved A/B: the a3b decode with and without huge pages (MOE_HUGEPAGES), 3 pairs.
cd /work/main
for i in 1 2 3; do
  for hp in 1 0; do
    r=$(MOE_HUGEPAGES=$hp build/tools/moebench model bench --model /tmp/mb-a3b --act bf16 --prompt-lengths 16 --contexts 128 --threads 1 --reps 7 2>&1 | grep -E "^decode|decode phases")
    echo "HP=$hp $(echo "$r" | head -1)"
    echo "      $(echo "$r" | tail -1 | cut -c1-200)"
  done
done
