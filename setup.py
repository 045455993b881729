# Only for scrapyd-deploy, which builds the egg with `python setup.py bdist_egg` and would otherwise
# write its own setup.py here (named "project", with find_packages()). Everything else, package
# data (the seed lists) and the `scrapy` entry point Scrapyd needs included, is in pyproject.toml.
from setuptools import setup

setup()
