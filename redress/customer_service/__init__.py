"""Customer service: explain one person, and the record of who looked whom up."""
