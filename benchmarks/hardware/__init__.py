"""One bounded validation run on a real GPU machine: `bash benchmarks/hardware/validate.sh`."""
