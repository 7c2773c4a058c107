#!/usr/bin/env bash
# The user every server process runs as: the owner of the results folder (www-data when it
# is not mounted), as upstream's entrypoints decide it.
get_user_of_results() {
    if [ -d /mnt/result/results ]; then
        stat -c '%u' /mnt/result/results
    else
        echo www-data
    fi
}
