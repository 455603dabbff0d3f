"""The report: ``build`` writes ``output.dir/report`` (index.html, stats.json, params.json
and the pictures registered in ``pictures``); ``cli`` rebuilds it for an existing dataset;
``sweep_page`` compares the jobs of a sweep."""
