"""The documentation site: Markdown pages under ``pages/``, ``mkdocs.yml`` (``make docs``
builds the site into ``outputs/site/``), and ``reference``, which writes the configuration
reference page from the schemas in ``pipeline/config/``."""
