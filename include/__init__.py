"""Code the DAGs share: post-sync validation, Great Expectations suites, warehouse access."""
