"""The recommender: indicators and rules over closed bars, an ML model beside them, and training."""
