"""Cantor: start the studio.  python main.py"""

if __name__ == "__main__":
    print("Cantor studio coming soon: see README.md for the model commands.")
