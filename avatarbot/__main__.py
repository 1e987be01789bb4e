from avatarbot.cli import main

main()
