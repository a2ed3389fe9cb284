"""File conversion on Conveyor: one queue per kind of file, run by one ``conveyor up``."""
