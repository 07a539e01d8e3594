"""Post-chat feedback: the survey on the customer's own channel (survey.py), its settings
(config.py, config/feedback.yml) and reading the customer's answers (answers.py)."""
