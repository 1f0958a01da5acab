"""The spoken-digit toolkit (issue #18): the scorers that say which digit a clip speaks, how
they were trained and how well they transfer to voices they never heard.

    classifier     the project's CNN digit classifier (DigitClassifier; pretrained/digit-classifier)
    features       its log-mel front end and network (Keras layers)
    augment        the augmentation chain both trainers use (numpy/scipy)
    crossval       the CNN's leave-engine/voices-out folds and its model (make digit-classifier)
    head           the digit head on Google's speech embedding (DigitHead; pretrained/digit-head)
    head_crossval  the head's folds, final heads and card (make digit-head)
    card           the tables and model cards both write
    sphinx         PocketSphinx with a digit grammar (SphinxDigits), the independent scorer

Run the scripts as modules: `python -m evaluation.digits.crossval`,
`python -m evaluation.digits.head_crossval`. Nothing heavy is imported here.
"""
