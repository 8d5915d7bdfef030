"""The study as one command: grid expansion, content-hash cache, results store, runner."""
