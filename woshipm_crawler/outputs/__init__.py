"""What is made from the state store after a crawl: the dataset files, the report, the book."""
