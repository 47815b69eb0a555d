"""What each stage of the recipe does, one module per stage: read files, skip work that is done and current, write
files atomically, mark them done. `pipeline/bin/` holds their command lines, `steps/` the scripts run.sh calls."""
