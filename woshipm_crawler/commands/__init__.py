"""Project commands (``COMMANDS_MODULE``): they read the project settings the way ``scrapy crawl`` does."""
