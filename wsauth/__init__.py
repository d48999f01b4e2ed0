"""The `wsauth` command line: run the local cloud, talk to a stack, check it end to end."""
