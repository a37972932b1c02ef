"""Reading the inbox: files into the warehouse, by content."""
