"""The code that reads conf/: where it lives, the checks of every value, building `_target_`s."""
